from django.db import migrations

DIGITS = "1234567890"


def digit_classes_get_their_digit(apps, schema_editor):
    """Classes named "0"-"9" made before hotkeys followed the name got keys in creation
    order ("7" selected class "4"). Give each its own digit; a class whose key a digit
    class needs moves to the next free digit (or none). Projects without digit-named
    classes, and every other key, are left as they are."""
    LabelClass = apps.get_model("labeling", "LabelClass")
    projects = (
        LabelClass.objects.filter(name__in=list(DIGITS)).values_list("project_id", flat=True).distinct()
    )
    for project_id in projects:
        classes = list(LabelClass.objects.filter(project_id=project_id).order_by("order", "id"))
        wanted = {c.pk: c.name for c in classes if c.name in DIGITS}
        if all(c.hotkey == wanted[c.pk] for c in classes if c.pk in wanted):
            continue
        new = {}
        for c in classes:
            if c.pk in wanted:
                new[c.pk] = wanted[c.pk]
            elif c.hotkey.lower() in wanted.values():
                new[c.pk] = None  # to be moved
            else:
                new[c.pk] = c.hotkey
        taken = {key.lower() for key in new.values() if key}
        for pk, key in new.items():
            if key is None:
                key = next((digit for digit in DIGITS if digit not in taken), "")
                taken.add(key)
                new[pk] = key
        changed = [c.pk for c in classes if new[c.pk] != c.hotkey]
        # Clear first, then set: keys only move between classes, and the unique index
        # holds after every statement.
        LabelClass.objects.filter(pk__in=changed).update(hotkey="")
        for pk in changed:
            if new[pk]:
                LabelClass.objects.filter(pk=pk).update(hotkey=new[pk])


class Migration(migrations.Migration):
    dependencies = [("labeling", "0007_report_rejected")]

    operations = [migrations.RunPython(digit_classes_get_their_digit, migrations.RunPython.noop)]
