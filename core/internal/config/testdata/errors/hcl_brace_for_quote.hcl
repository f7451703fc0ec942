directory "embedded" {
  path = {ringside.db"
}
