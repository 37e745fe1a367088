# Two commands for a newcomer: `make run` and `make test`. Each sets up what is missing first.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
SYSSTAMP:= $(VENV)/.system-ok

.PHONY: run test setup system clean bench package

run: setup
	$(VPY) -m studio resources/demo.studio

test: setup
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(VPY) -m pytest

setup: $(SYSSTAMP) $(STAMP)

$(SYSSTAMP): packaging/system-deps.sh
	bash packaging/system-deps.sh
	@mkdir -p $(VENV) && touch $@

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q torch==2.13.0
	$(VPY) -m pip install -q -e '.[dev]'
	touch $@

bench: setup
	$(VPY) -m studio bench

package: setup
	$(VPY) -m pip install -q "pyinstaller>=6.10"
	$(VPY) -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller packaging/cantor-studio.spec
	cp packaging/cantor-studio.desktop packaging/cantor-studio.svg dist/cantor-studio/
	@du -sh dist/cantor-studio

clean:
	rm -rf $(VENV) build dist .pytest_cache
