"""Reading the deployment's files as they are written."""
import yaml


def read_yaml(path):
    """The YAML file with every scalar as written. nameko's command line, imported in the
    test session, teaches yaml.SafeLoader to expand ${VAR:default} from the environment,
    which would hide compose's own ${VAR:?…} placeholders."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
