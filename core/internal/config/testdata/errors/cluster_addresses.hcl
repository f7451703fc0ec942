cluster "redis" {
  addresses = []
}
