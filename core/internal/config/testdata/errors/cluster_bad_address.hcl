cluster "redis" {
  addresses = ["10.0.0.5:6379", "10.0.0.6", ":6379", "redis:99999"]
  password  = ["hunter2-not-printed"]
  database  = -1
}
