from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("imagehost", "0003_encodejob_heartbeat_at")]

    operations = [
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                ("name", models.CharField(max_length=200, primary_key=True, serialize=False)),
                ("seen_at", models.DateTimeField(db_index=True)),
            ],
        ),
    ]
