plugin "console" {
  command = ["./console-plugin"]
  sha256  = "3F2A9C"
}
