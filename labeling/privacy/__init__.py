"""Privacy blurring: faces and chosen detector classes blurred before anyone labels an image.

blur.py and detectors.py are Django-free (pixels and detectors only); services.py holds the
rows, the storage and the job; api.py the endpoints.
"""
