# The report aggregates leave labeling's state (their tables are the reports app's now).
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0018_models_to_core"),
        ("reports", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ReportAgreementPair"),
                migrations.DeleteModel(name="ReportAnnotationMark"),
                migrations.DeleteModel(name="ReportDailyCounts"),
                migrations.DeleteModel(name="ReportFlagReason"),
                migrations.DeleteModel(name="ReportLabeledImage"),
            ],
            database_operations=[],
        ),
    ]
