//go:build ringside_deps

// Temporary: pins dependencies while the packages that import them are written.
package main

import (
	_ "firebase.google.com/go/v4"
	_ "firebase.google.com/go/v4/errorutils"
	_ "firebase.google.com/go/v4/messaging"
	_ "github.com/golang-jwt/jwt/v4"
	_ "github.com/sideshow/apns2"
	_ "github.com/sideshow/apns2/certificate"
	_ "github.com/sideshow/apns2/token"
	_ "golang.org/x/net/http2"
	_ "google.golang.org/api/option"
)
