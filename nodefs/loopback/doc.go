// Package loopback serves a host directory as a nodefs tree. Each node
// wraps a node of the passthrough filesystem (package fs/passthrough),
// which does the work, so the tree gets its security (no path from a
// client is resolved; calls run as the caller) and its descriptor economy.
package loopback
