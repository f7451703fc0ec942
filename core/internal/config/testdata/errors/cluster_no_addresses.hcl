cluster "redis" {
  password = env("REDIS_PASSWORD")
}
