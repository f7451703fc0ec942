test "a group sid has no hyphens" {
  call {
    on  = "group_call_event"
    sid = "151ad995-749c-4a28-893f-636700469db1"
  }
  expect { status = "accepted" }
}
