"""SavedModel export for TensorFlow Serving: per-task signatures, versioned atomic layout."""
