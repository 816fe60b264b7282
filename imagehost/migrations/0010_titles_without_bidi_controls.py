"""Titles saved before titles were cleaned lose their bidi controls (U+202A-U+202E,
U+2066-U+2069), as ``library.clean_title`` cleans every title saved since: "\u202egnp.exe"
showed as "exe.png" on share pages. An album whose title was nothing else becomes
"Untitled album" (an album needs a title). The pattern is copied here, not imported: a
migration keeps doing what it did when it was written."""
import re

from django.db import migrations

BIDI_CONTROLS = "[\u202a-\u202e\u2066-\u2069]"
BIDI_CONTROLS_RE = re.compile(BIDI_CONTROLS)


def clean_titles(apps, schema_editor):
    for model, empty in (("Picture", ""), ("Album", "Untitled album"), ("EncodeJob", "")):
        rows = apps.get_model("imagehost", model).objects
        for pk, title in rows.filter(title__regex=BIDI_CONTROLS).values_list("pk", "title").iterator():
            rows.filter(pk=pk).update(title=BIDI_CONTROLS_RE.sub("", title).strip() or empty)


class Migration(migrations.Migration):
    dependencies = [("imagehost", "0009_shortlink_job_made_for")]
    operations = [migrations.RunPython(clean_titles, migrations.RunPython.noop)]
