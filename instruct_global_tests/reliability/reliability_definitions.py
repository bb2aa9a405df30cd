"""A code location for the crash-and-resume runs: the package's dataset assets and jobs, resources pointed
at the test's local servers through ``RELIABILITY_URLS`` (JSON: corpus, openai, anthropic, google).

    RELIABILITY_URLS='{...}' dagster job execute -m instruct_global_tests.reliability.reliability_definitions \\
        -j dataset_job -c run.yaml --tags '{"dagster/partition": "yor"}'

The call cache lives under the data dir (INSTRUCT_GLOBAL_DATA_DIR), as in a real deployment.
"""

from __future__ import annotations

import json
import os

from dagster import Definitions, load_assets_from_modules

from instruct_global.assets import corpus, curate, export, generate, translate
from instruct_global.jobs import dataset_job
from instruct_global_tests.reliability.dataset_harness import SERVER_NAMES, resources_for

_urls = json.loads(os.environ.get("RELIABILITY_URLS") or "{}")
defs = Definitions(
    assets=load_assets_from_modules([corpus, generate, translate, curate, export]),
    jobs=[dataset_job],
    resources=resources_for({name: _urls.get(name, "http://127.0.0.1:9") for name in SERVER_NAMES}, None),
)
