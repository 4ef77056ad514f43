"""The grid registry file (YAML or JSON) that ``wangge-admin grids load`` and
``PUT /api/v1/registry`` accept.

    version: 7                      # increases with every published edition
    county: {id: yongtai, name: 永泰县}
    towns:
      - id: zhangcheng
        name: 樟城镇
        communities:
          - id: zc-nanmen
            name: 南门社区
            kind: community         # or village
            grids:
              - id: YT-ZC-NM-01
                name: 南门社区第一网格
                head: {id: w-zc-nm-01-h, name: 张水如, phone: "13800000000"}
                workers:
                  - {id: w-zc-nm-01-1, name: 李梅, phone: "13800000001", on_duty: true}
                wechat_groups: [wx-zc-nm-01]
                buildings: [南湖花园二区, 南门小区3号楼]
                area: {type: Polygon, coordinates: [[[118.94, 25.86], [118.95, 25.86], [118.95, 25.87], [118.94, 25.86]]]}
    departments:
      - id: power
        name: 县供电公司路灯所
        categories: [street_lighting]
        contact: {id: d-power, name: 值班员, phone: "059124000000", email: lamps@example.gov.cn}
"""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

_id = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", error="Use 1 to 64 letters, digits, '.', '_' or '-'.")
_name = validate.Length(min=1, max=100)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class PersonSchema(StrictSchema):
    id = fields.String(required=True, validate=_id)
    name = fields.String(required=True, validate=_name)
    phone = fields.String(validate=validate.Length(min=5, max=20))
    email = fields.Email()


class WorkerSchema(PersonSchema):
    on_duty = fields.Boolean(load_default=True)


class PolygonSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.Equal("Polygon"))
    coordinates = fields.List(
        fields.List(fields.Tuple((fields.Float(validate=validate.Range(-180, 180)), fields.Float(validate=validate.Range(-90, 90))))),
        required=True, validate=validate.Length(min=1),
    )

    @validates_schema
    def closed_rings(self, data, **kwargs):
        for number, ring in enumerate(data["coordinates"]):
            if len(ring) < 4 or ring[0] != ring[-1]:
                raise ValidationError(f"Ring {number} must be closed (first point repeated last) with at least 4 points.", "coordinates")


class GridSchema(StrictSchema):
    id = fields.String(required=True, validate=_id)
    name = fields.String(required=True, validate=_name)
    head = fields.Nested(PersonSchema, required=True)
    workers = fields.List(fields.Nested(WorkerSchema), load_default=list)
    wechat_groups = fields.List(fields.String(validate=_id), load_default=list)
    buildings = fields.List(fields.String(validate=validate.Length(min=2, max=100)), load_default=list)
    area = fields.Nested(PolygonSchema)


class CommunitySchema(StrictSchema):
    id = fields.String(required=True, validate=_id)
    name = fields.String(required=True, validate=_name)
    kind = fields.String(load_default="community", validate=validate.OneOf(("community", "village")))
    head = fields.Nested(PersonSchema)
    grids = fields.List(fields.Nested(GridSchema), required=True)


class TownSchema(StrictSchema):
    id = fields.String(required=True, validate=_id)
    name = fields.String(required=True, validate=_name)
    head = fields.Nested(PersonSchema)
    communities = fields.List(fields.Nested(CommunitySchema), required=True)


class DepartmentSchema(StrictSchema):
    id = fields.String(required=True, validate=_id)
    name = fields.String(required=True, validate=_name)
    categories = fields.List(fields.String(validate=_id), required=True, validate=validate.Length(min=1))
    contact = fields.Nested(PersonSchema, required=True)


class CountySchema(StrictSchema):
    id = fields.String(required=True, validate=_id)
    name = fields.String(required=True, validate=_name)


class RegistrySchema(StrictSchema):
    # at most what every JSON reader keeps exactly (and far below the store's 64-bit limit)
    version = fields.Integer(required=True, validate=validate.Range(min=1, max=2**53 - 1))
    county = fields.Nested(CountySchema, required=True)
    towns = fields.List(fields.Nested(TownSchema), required=True, validate=validate.Length(min=1))
    departments = fields.List(fields.Nested(DepartmentSchema), load_default=list)
