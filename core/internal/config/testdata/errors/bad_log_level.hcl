log {
  format = "json"
  level  = "verbose"
}
