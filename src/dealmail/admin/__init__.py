"""Streamlit dashboard for the owner; screens call domain services, never SQL."""
