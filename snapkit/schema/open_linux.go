package schema

// etcd skips syncing the freelist on Linux and rebuilds it on open.
const noFreelistSync = true
