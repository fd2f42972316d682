"""One file per dashboard screen; Streamlit runs each as a script (see admin/app.py)."""
