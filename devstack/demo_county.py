"""A demo grid registry shaped like Yongtai County (永泰县, Fuzhou): its 21 real
towns and townships, 1,429 grids (the figure in the article), and the places the
article mentions. Everything else (village names, people, phone numbers,
estates, boundaries) is made up, and the same on every run.

    python -m devstack.demo_county var/yongtai.json

The output is the format of ``services.routing.registry_schema.RegistrySchema``.

Ids: town ``zhangcheng``; community ``zc-nanmen`` (town code + pinyin);
grid ``YT-ZC-NANMEN-02``; its WeChat group ``wx-zc-nanmen-02`` (the group that
``devstack.demo`` files its street-light request from); people
``w-zc-nanmen-02-h`` (head) and ``w-zc-nanmen-02-1``.. (workers).
"""
import argparse
import json
import math
import random
from pathlib import Path

SEED = 591  # Fuzhou's area code; any fixed number keeps the output stable

# (id, name, code, grids); codes prefix every id below the town. 东洋 and 大洋
# share the initials DY, so both get three letters. Grid counts add up to 1,429.
TOWNS = [
    ("zhangcheng", "樟城镇", "zc", 152),
    ("chengfeng", "城峰镇", "cf", 104),
    ("qingliang", "清凉镇", "ql", 78),
    ("linglu", "岭路乡", "ll", 50),
    ("chixi", "赤锡乡", "cx", 44),
    ("wutong", "梧桐镇", "wt", 100),
    ("songkou", "嵩口镇", "sk", 96),
    ("fukou", "洑口乡", "fk", 46),
    ("gaiyang", "盖洋乡", "gy", 52),
    ("changqing", "长庆镇", "cq", 70),
    ("dongyang", "东洋乡", "doy", 42),
    ("xiaba", "霞拔乡", "xb", 54),
    ("tongan", "同安镇", "ta", 72),
    ("dayang", "大洋镇", "day", 66),
    ("pangu", "盘谷乡", "pg", 48),
    ("hongxing", "红星乡", "hx", 40),
    ("baiyun", "白云乡", "by", 56),
    ("danyun", "丹云乡", "dny", 46),
    ("fuquan", "富泉乡", "fq", 41),
    ("geling", "葛岭镇", "gl", 92),
    ("tangqian", "塘前乡", "tq", 80),
]

# Towns as blocks of a 7 x 3 layout, north row first, west to east: roughly
# where they lie, not a survey.
LAYOUT = [
    ["gaiyang", "changqing", "baiyun", "xiaba", "pangu", "fuquan", "tangqian"],
    ["dongyang", "fukou", "qingliang", "chengfeng", "zhangcheng", "linglu", "geling"],
    ["songkou", "hongxing", "dayang", "tongan", "wutong", "chixi", "danyun"],
]
WEST, EAST, SOUTH, NORTH = 118.55, 119.25, 25.60, 26.10
# A degree of longitude is shorter than one of latitude this far north; used to
# keep grid cells roughly square on the ground.
LON_DEGREE_IN_LAT_DEGREES = math.cos(math.radians((SOUTH + NORTH) / 2))

# How many of a town's communities are urban 社区; the rest are 村.
URBAN_COMMUNITIES = {"zhangcheng": 10}
URBAN_COMMUNITIES_IN_TOWN = 2  # a 镇 has a small urban centre
URBAN_COMMUNITIES_IN_TOWNSHIP = 1  # a 乡 has one around its government seat

# The article's places, given the first community slot of their kind in their town.
FEATURED_COMMUNITIES = {
    "zhangcheng": {"community": [("nanmen", "南门")]},
    "chengfeng": {"village": [("tangyang", "汤洋")]},
    "geling": {"community": [("fangguang", "方广")]},
}
FEATURED_BUILDINGS = {
    "YT-ZC-NANMEN-02": ["南湖花园一区", "南湖花园二区"],
    "YT-GL-FANGGUANG-01": ["悦山小区1号楼", "悦山小区3号楼"],
}

# Place-name syllables with their pinyin: two of them make a village or
# community name such as 石坑村 (shikeng).
PLACE_FIRST = [
    ("东", "dong"), ("西", "xi"), ("上", "shang"), ("下", "xia"), ("大", "da"), ("小", "xiao"),
    ("龙", "long"), ("凤", "feng"), ("石", "shi"), ("梅", "mei"), ("竹", "zhu"), ("桃", "tao"),
    ("松", "song"), ("白", "bai"), ("青", "qing"), ("黄", "huang"), ("湖", "hu"), ("后", "hou"),
    ("前", "qian"), ("新", "xin"), ("长", "chang"), ("高", "gao"), ("福", "fu"), ("安", "an"),
    ("云", "yun"), ("坪", "ping"), ("洪", "hong"), ("岩", "yan"), ("金", "jin"), ("玉", "yu"),
    ("半", "ban"), ("林", "lin"), ("吉", "ji"), ("溪", "xi"),
]
PLACE_SECOND = [
    ("坑", "keng"), ("洋", "yang"), ("头", "tou"), ("坂", "ban"), ("林", "lin"), ("山", "shan"),
    ("岭", "ling"), ("口", "kou"), ("坪", "ping"), ("厝", "cuo"), ("溪", "xi"), ("田", "tian"),
    ("墩", "dun"), ("洲", "zhou"), ("埔", "pu"), ("峰", "feng"), ("岩", "yan"), ("寨", "zhai"),
    ("湾", "wan"), ("里", "li"), ("兜", "dou"), ("垅", "long"), ("尾", "wei"), ("湖", "hu"),
    ("庄", "zhuang"), ("亭", "ting"),
]

# Estate names: prefix + type, each used by one grid only, so a building named in
# a request points at one grid. 南湖 and 悦山 are left out: the article has them.
ESTATE_PREFIXES = [
    "金桂", "阳光", "温泉", "锦绣", "丽景", "江滨", "樟溪", "龙泉", "御景", "碧水", "金域", "香榭",
    "东湖", "凤凰", "名城", "世纪", "盛世", "翠屏", "青云", "紫荆", "银杏", "桂香", "嘉禾", "华庭",
    "锦江", "清源", "永安", "泰和", "康乐", "富康", "润泽", "书香", "天元", "祥和", "怡景", "绿洲",
    "明珠", "金山", "玉湖", "春晖", "晨光", "和谐", "幸福", "育才", "文笔", "塔山", "滨江", "丰泽",
]
ESTATE_TYPES = ["小区", "花园", "公寓", "家园", "苑", "雅居", "华府", "新城"]
ESTATE_SECTIONS = ["一区", "二区", "三区"]

FAMILY_NAMES = "林陈黄张吴王郑李刘杨鲍余游邱蔡谢池叶苏许"
GIVEN_NAME_CHARS = "秀美丽华明建国平金玉春梅兰芳志强伟文辉荣海清德福英桂珍凤勇军斌雪燕晓琳婷宏炳祥水如"
NUMERALS = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二"]

# (id, name, category, email user); categories are what intake classifies requests into.
DEPARTMENTS = [
    ("power", "县供电公司路灯所", "street_lighting", "lamps"),
    ("water", "县自来水公司", "water_supply", "water"),
    ("urban_management", "县城市管理局（环卫）", "sanitation", "sanitation"),
    ("transport", "县交通运输局", "roads", "roads"),
    ("justice", "县司法局（人民调解）", "dispute", "mediation"),
    ("civil_affairs", "县民政局", "welfare", "welfare"),
    ("emergency", "县应急管理局", "safety", "safety"),
    ("housing", "县住房和城乡建设局", "housing", "housing"),
    ("health", "县卫生健康局", "health", "health"),
    ("police", "县公安局", "public_order", "police"),
]


class _Generator:
    """One run's random source and the names and numbers it has handed out."""

    def __init__(self):
        self.rng = random.Random(SEED)
        self.next_mobile = 0
        self.next_landline = 0
        featured = [place for kinds in FEATURED_COMMUNITIES.values() for places in kinds.values() for place in places]
        self.used_place_slugs = {slug for slug, _ in featured}
        self.used_place_names = {stem for _, stem in featured}
        self.estates = [prefix + kind for prefix in ESTATE_PREFIXES for kind in ESTATE_TYPES]
        self.rng.shuffle(self.estates)

    def person_name(self):
        given_length = self.rng.choice((1, 2, 2))
        return self.rng.choice(FAMILY_NAMES) + "".join(self.rng.choices(GIVEN_NAME_CHARS, k=given_length))

    def mobile(self):
        # 1380000xxxx: obviously fake, and room for every worker in the county
        if self.next_mobile > 9999:
            raise RuntimeError("ran out of demo mobile numbers")
        number = f"1380000{self.next_mobile:04d}"
        self.next_mobile += 1
        return number

    def landline(self):
        number = f"0591-2400{self.next_landline:04d}"
        self.next_landline += 1
        return number

    def place(self):
        """A new (pinyin slug, name stem) pair, unique in the county in both spellings."""
        while True:
            first, first_pinyin = self.rng.choice(PLACE_FIRST)
            second, second_pinyin = self.rng.choice(PLACE_SECOND)
            slug, stem = first_pinyin + second_pinyin, first + second
            if first != second and slug not in self.used_place_slugs and stem not in self.used_place_names:
                self.used_place_slugs.add(slug)
                self.used_place_names.add(stem)
                return slug, stem

    def estate_buildings(self):
        """0 to 3 buildings of one estate that no other grid has."""
        count = self.rng.randint(0, 3)
        if count == 0:
            return []
        estate = self.estates.pop()
        if count == 1:
            return [estate]
        if self.rng.random() < 0.5:
            return [estate + section for section in ESTATE_SECTIONS[:count]]
        return [f"{estate}{number}号楼" for number in sorted(self.rng.sample(range(1, 13), count))]


def build_county(version=1):
    """The whole registry as a plain, JSON-ready dict; identical on every call."""
    generator = _Generator()
    blocks = _town_blocks()
    towns = [_town(generator, town, blocks[town[0]]) for town in TOWNS]
    return {
        "version": version,
        "county": {"id": "yongtai", "name": "永泰县"},
        "towns": towns,
        "departments": [_department(generator, *department) for department in DEPARTMENTS],
    }


def _town_blocks():
    """Each town's (west, south, east, north) in the 7 x 3 layout."""
    rows, columns = len(LAYOUT), len(LAYOUT[0])
    blocks = {}
    for row, town_ids in enumerate(LAYOUT):
        for column, town_id in enumerate(town_ids):
            blocks[town_id] = (
                WEST + (EAST - WEST) * column / columns,
                NORTH - (NORTH - SOUTH) * (row + 1) / rows,
                WEST + (EAST - WEST) * (column + 1) / columns,
                NORTH - (NORTH - SOUTH) * row / rows,
            )
    return blocks


def _town(generator, town, block):
    town_id, town_name, code, grid_count = town
    cells = _cells(block, grid_count)
    featured = {kind: list(places) for kind, places in FEATURED_COMMUNITIES.get(town_id, {}).items()}
    if town_id in URBAN_COMMUNITIES:
        urban_count = URBAN_COMMUNITIES[town_id]
    elif town_name.endswith("镇"):
        urban_count = URBAN_COMMUNITIES_IN_TOWN
    else:
        urban_count = URBAN_COMMUNITIES_IN_TOWNSHIP
    communities = []
    while cells:
        kind = "community" if len(communities) < urban_count else "village"
        slug, stem = featured[kind].pop(0) if featured.get(kind) else generator.place()
        size = _community_size(generator.rng, kind, len(cells))
        community_cells, cells = cells[:size], cells[size:]
        communities.append(_community(generator, code, slug, stem, kind, community_cells))
    # the town's lead account at the identity provider has the head's id (no
    # generated name: the generator's sequence, and so every other name, stays as it was)
    return {"id": town_id, "name": town_name, "head": {"id": f"lead-{town_id}", "name": f"{town_name}网格办"},
            "communities": communities}


def _community_size(rng, kind, cells_left):
    """3 to 12 grids (urban ones larger), never leaving fewer than 3 for the next."""
    if cells_left <= 12:
        return cells_left
    smallest, largest = (5, 12) if kind == "community" else (3, 8)
    return rng.randint(smallest, min(largest, cells_left - 3))


def _community(generator, code, slug, stem, kind, cells):
    name = stem + ("社区" if kind == "community" else "村")
    grids = []
    for number, cell in enumerate(cells, start=1):
        grid_id = f"YT-{code}-{slug}-{number:02d}".upper()
        if grid_id in FEATURED_BUILDINGS:
            buildings = FEATURED_BUILDINGS[grid_id]
        elif kind == "community":
            buildings = generator.estate_buildings()
        else:
            # villages are houses, not estates; some have one resettlement block
            buildings = [f"{stem}新村"] if number == 1 and generator.rng.random() < 0.5 else []
        grids.append(_grid(generator, grid_id, f"{code}-{slug}-{number:02d}", f"{name}第{NUMERALS[number - 1]}网格", buildings, cell))
    community_id = f"{code}-{slug}"
    return {"id": community_id, "name": name, "kind": kind, "head": {"id": f"lead-{community_id}", "name": f"{name}网格站"},
            "grids": grids}


def _grid(generator, grid_id, local_id, name, buildings, cell):
    head = {"id": f"w-{local_id}-h", "name": generator.person_name(), "phone": generator.mobile()}
    workers = [
        {"id": f"w-{local_id}-{number}", "name": generator.person_name(), "phone": generator.mobile(), "on_duty": True}
        for number in range(1, generator.rng.randint(2, 3) + 1)
    ]
    if generator.rng.random() < 0.2:  # someone on leave; the first worker always covers
        generator.rng.choice(workers[1:])["on_duty"] = False
    return {
        "id": grid_id,
        "name": name,
        "head": head,
        "workers": workers,
        "wechat_groups": [f"wx-{local_id}"],
        "buildings": buildings,
        "area": _rectangle(*cell),
    }


def _cells(block, count):
    """`count` lattice cells in the block, in snake order from the north-west
    corner so that consecutive cells (one community's grids) touch. Cells that
    are not needed stay empty: hills and forest."""
    west, south, east, north = block
    width_on_ground = (east - west) * LON_DEGREE_IN_LAT_DEGREES
    height_on_ground = north - south
    columns = math.ceil(math.sqrt(count * width_on_ground / height_on_ground))
    rows = math.ceil(count / columns)
    cells = []
    for index in range(count):
        row, column = divmod(index, columns)
        if row % 2:
            column = columns - 1 - column
        # every edge comes from the same formula, so neighbours share it exactly
        cells.append((
            round(west + (east - west) * column / columns, 6),
            round(north - (north - south) * (row + 1) / rows, 6),
            round(west + (east - west) * (column + 1) / columns, 6),
            round(north - (north - south) * row / rows, 6),
        ))
    return cells


def _rectangle(west, south, east, north):
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]  # counter-clockwise
    return {"type": "Polygon", "coordinates": [ring]}


def _department(generator, department_id, name, category, email_user):
    contact = {
        # the department's account at the identity provider has the same id
        "id": f"dept-{department_id}",
        "name": generator.person_name(),
        "phone": generator.landline(),
        "email": f"{email_user}@example.gov.cn",
    }
    return {"id": department_id, "name": name, "categories": [category], "contact": contact}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the demo Yongtai County grid registry as JSON.")
    parser.add_argument("output", type=Path, help="where to write the registry, e.g. var/yongtai.json")
    parser.add_argument("--version", type=int, default=1, help="the registry edition number (default 1)")
    args = parser.parse_args(argv)
    registry = build_county(args.version)
    args.output.write_text(json.dumps(registry, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
