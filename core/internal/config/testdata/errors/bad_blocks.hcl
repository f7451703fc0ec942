directory "redis" {
  path = "redis://localhost"
}

plugin "console" {
  sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}

notifier "ios phone" {
  plugin = "apns"
}

notifier "android" {
  devices = "fcm"
}

server {
  tls {
    cert_file = "tls/cert.pem"
  }
}
