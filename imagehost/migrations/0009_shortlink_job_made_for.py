"""ShortLink.job also records the anonymous upload whose completion made the shared anonymous
link (an anonymous deletion link may delete that link, never one a person made with /shorten).

Existing anonymous links get their job back where an upload made them: ``jobs.complete``
created the link in the transaction that finished the job, so its ``created`` falls within a
few seconds after that job's ``finished``; a link made earlier by /shorten predates every
upload of its token and stays without a job."""
from datetime import timedelta

import django.db.models.deletion
from django.db import migrations, models


def record_uploads_that_made_anonymous_links(apps, schema_editor):
    ShortLink = apps.get_model("imagehost", "ShortLink")
    EncodeJob = apps.get_model("imagehost", "EncodeJob")
    for link in ShortLink.objects.filter(owner__isnull=True, job__isnull=True).exclude(token_sha256="").iterator():
        made_by = (
            EncodeJob.objects.filter(owner__isnull=True, status="done", picture__token_sha256=link.token_sha256,
                                     finished__lte=link.created, finished__gte=link.created - timedelta(seconds=5))
            .order_by("finished").first()
        )
        if made_by is not None:
            ShortLink.objects.filter(pk=link.pk).update(job=made_by)


class Migration(migrations.Migration):

    dependencies = [
        ('imagehost', '0008_shortlink_reserved_many_per_owner_deletion_key'),
    ]

    operations = [
        migrations.AlterField(
            model_name='shortlink',
            name='job',
            field=models.ForeignKey(blank=True, help_text="The upload this link was made for: reserved before its token existed, or an anonymous upload's shared link.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='reserved_links', to='imagehost.encodejob'),
        ),
        migrations.RunPython(record_uploads_that_made_anonymous_links, migrations.RunPython.noop),
    ]
