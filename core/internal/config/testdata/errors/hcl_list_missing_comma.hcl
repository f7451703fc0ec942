route "all" {
  notify = ["ios" "android"]
}
