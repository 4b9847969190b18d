from django.urls import path

from . import api

urlpatterns = [
    path("projects/<int:project_id>/training-runs/", api.TrainingRunListStartApi.as_view(),
         name="trainingrun-list"),
    path("training-runs/<int:run_id>/", api.TrainingRunDetailApi.as_view(), name="trainingrun-detail"),
    path("training-runs/<int:run_id>/cancel/", api.TrainingRunCancelApi.as_view(), name="trainingrun-cancel"),
    path("projects/<int:project_id>/model-versions/", api.ModelVersionListApi.as_view(),
         name="modelversion-list"),
    path("model-versions/<int:version_id>/deploy/", api.ModelVersionDeployApi.as_view(),
         name="modelversion-deploy"),
    path("projects/<int:project_id>/prelabel/", api.PrelabelStartApi.as_view(), name="prelabel-start"),
    path("prelabel-runs/<int:run_id>/", api.PrelabelRunDetailApi.as_view(), name="prelabelrun-detail"),
    path("prelabel-runs/<int:run_id>/cancel/", api.PrelabelRunCancelApi.as_view(), name="prelabelrun-cancel"),
    path("projects/<int:project_id>/embedding-runs/", api.EmbeddingRunStartApi.as_view(),
         name="embeddingrun-start"),
    path("embedding-runs/<int:run_id>/", api.EmbeddingRunDetailApi.as_view(), name="embeddingrun-detail"),
    path("embedding-runs/<int:run_id>/cancel/", api.EmbeddingRunCancelApi.as_view(),
         name="embeddingrun-cancel"),
    path("projects/<int:project_id>/training-curves/", api.TrainingCurvesApi.as_view(), name="training-curves"),
]
