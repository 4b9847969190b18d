"""Celery entry points for imports, exports and privacy blurring (queue "default"): take ids, call a
service."""

from celery import shared_task


@shared_task(name="labeling.tasks.import_execute")
def import_execute(job_id: int) -> None:
    from .importers.service import import_job_execute

    import_job_execute(job_id=job_id)


@shared_task(name="labeling.tasks.export_execute")
def export_execute(job_id: int) -> None:
    from .exporters.service import export_job_execute

    export_job_execute(job_id=job_id)


@shared_task(name="labeling.tasks.export_files_expire")
def export_files_expire() -> int:
    from .exporters.service import export_files_expire as expire

    return expire()


@shared_task(name="labeling.tasks.import_staging_sweep")
def import_staging_sweep() -> int:
    from .importers.service import import_staging_sweep as sweep

    return sweep()


@shared_task(name="labeling.tasks.queued_jobs_redispatch")
def queued_jobs_redispatch() -> int:
    from core.jobs import queued_jobs_redispatch as redispatch

    return redispatch()


@shared_task(name="labeling.tasks.blur_run_execute")
def blur_run_execute(run_id: int) -> None:
    from .privacy.services import blur_run_execute as execute

    execute(run_id=run_id)
