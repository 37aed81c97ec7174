"""The storage service: buckets, presigned uploads and downloads, assets."""
