server {
  max_id_bytes = "x"
}
