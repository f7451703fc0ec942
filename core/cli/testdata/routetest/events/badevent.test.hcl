test "a call event has no param" {
  call {
    on    = "call_event"
    param = "eA=="
  }
  expect { status = "accepted" }
}
