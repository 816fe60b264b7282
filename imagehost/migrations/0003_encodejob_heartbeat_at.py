from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("imagehost", "0002_picture_model_name")]

    operations = [
        migrations.AddField(
            model_name="encodejob",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
