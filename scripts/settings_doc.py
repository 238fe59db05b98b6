"""Print docs/settings.md, the reference of every FACTFLOW_* setting, from the settings
model: `python scripts/settings_doc.py > docs/settings.md`."""

from factflow.settings import reference_page

print(reference_page(), end="")
