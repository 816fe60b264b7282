from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("imagehost", "0001_initial")]

    operations = [
        migrations.RenameField(model_name="picture", old_name="model_id", new_name="model_name"),
        migrations.AlterField(
            model_name="picture",
            name="model_name",
            field=models.CharField(help_text="The codec model that encoded the token.", max_length=40),
        ),
    ]
