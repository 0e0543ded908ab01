//go:build !linux

package creds

// Other systems have no filesystem IDs, and ringfuse serves only on Linux:
// these let the package compile, and probe then reports no support.

func setfsuid(uint32) {}
func setfsgid(uint32) {}

// currentFsuid returns an ID no probe expects, so [Supported] is false.
func currentFsuid() uint32 { return ^uint32(0) }
