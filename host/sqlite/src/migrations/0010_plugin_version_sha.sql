-- Whether any plugin still keeps a version with given bytes, so deleting a version can tell when its compiled
-- artifact is no longer needed, without reading every stored upload.
CREATE INDEX plugin_version_sha256 ON plugin_version (sha256);
