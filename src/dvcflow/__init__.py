"""dvcflow: the lifecycle of administrative dossiers for Vietnam's online public services."""
