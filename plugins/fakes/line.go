package fakes

// LineExample is the query string of LINE Planet's documented notify_cb
// callback example, verbatim.
const LineExample = "from_user_id=9286&from_service_id=linecorp.com&to_user_id=2809&to_service_id=linecorp.com&sid=" + LineSID + "&type=A&stid=stid&param=eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ%3D%3D"

// LineSID is the example's sid.
const LineSID = "151ad995-749c-4a28-893f-636700469db1"

// LineParam is the example's param after percent-decoding: the cc_param a
// push must carry byte for byte.
const LineParam = "eyJjYWxsRmxvd1R5cGUiOiJNIiwiY29tbVBhcmFtIjoie1wibXBrZXlcIjpcIkFoTFJVMzBYdVhGZW5UM1o4WmFwVSsyWVBUUHpyWUEyWk9iRHFSenkraHIzXCIsXCJjdG1cIjozMDAwLFwiaWN0XCI6NjAwMH0iLCJjYWxsVHlwZSI6IkEifQ=="
