// Package store keeps backupd's objects in any gocloud.dev/blob bucket
// (s3://, gs://, azblob://, file://, mem://) under a prefix, with the layout
// and commit rule of package manifest: it lists backups by their manifests,
// reports orphans and broken manifests, commits a staged upload by copying it
// to its final name before writing the manifest, deletes a backup manifest
// first, and holds the prefix's lock (a conditional write with an expiry;
// on file:// an exclusive link, safe between processes) and the state of
// the newest attempt. Every small call is retried with
// backoff; a streamed upload is not, since its source cannot be replayed.
package store
