"""Links e-mailed before unlock links had a lifetime said "the link does not expire": each
gets the full lifetime from now (this deployment) rather than dying at once."""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.utils import timezone


def date_existing_links(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Order = apps.get_model("orders", "Order")
    Order.objects.exclude(unlock_secret_hash="").filter(unlock_link_issued_at__isnull=True).update(
        unlock_link_issued_at=timezone.now()
    )


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_order_unlock_link_issued_at")]

    operations = [migrations.RunPython(date_existing_links, migrations.RunPython.noop)]
