"""One way to read configuration: each service's YAML file, with nameko's
``${VAR:default}`` environment placeholders resolved."""
from pathlib import Path

import yaml
from nameko.cli.main import setup_yaml_parser

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
SERVICE_NAMES = ("intake", "routing", "notify", "study", "care")

setup_yaml_parser()


def service_config_path(service_name):
    return SERVICES_DIR / service_name / "config.yml"


def load_config(path):
    with open(path, encoding="utf-8") as config_file:
        return yaml.safe_load(config_file)


def load_service_config(service_name):
    return load_config(service_config_path(service_name))
