// Package pluginpb holds the protobuf messages and gRPC service of the
// ringside plugin protocol, package ringside.plugin.v1. The generated code is
// committed; regenerate it with `go generate ./plugins/sdk/pluginpb` after
// installing protoc, protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2.
package pluginpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto
