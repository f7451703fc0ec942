test "cut" {
  call {
    type =
  }
}
