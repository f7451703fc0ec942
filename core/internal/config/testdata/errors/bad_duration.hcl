server {
  shutdown_grace = "10x"
}

delivery {
  dedup_window = "120"
}
