from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("workspaces", "0002_event_depth_limit"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="auditentry",
            options={"ordering": ["-at", "-id"], "verbose_name_plural": "audit entries"},
        ),
    ]
