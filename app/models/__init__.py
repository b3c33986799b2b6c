"""Qt item models and state objects shared by the views."""
