// Package e2e drives the real lbtop binary in tmux against a real cluster:
// keys go in with send-keys, screens come out with capture-pane. It holds
// tests only.
package e2e
