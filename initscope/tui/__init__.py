"""The terminal app. Imported only when the app is opened."""
