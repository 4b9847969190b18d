"""The class tree's editor page (admins reshape the tree; see labeling/taxonomy.py)."""
from .pages import _page

taxonomy = _page("taxonomy", "labeling/taxonomy.html")
