//! Fixed cost of a `#[traced_test]`: 100 tests that each trace `true`,
//! 100 that each trace a trivial function, and 100 plain `#[test]`s that
//! run `true` untraced, for `cargo xtask bench-tests` to time, in one
//! process and under nextest. Not part of the test suite (`test = false`).

use probity::{traced, traced_test, Cmd};

macro_rules! cases {
    ($($cmd:ident $func:ident $plain:ident)*) => {$(
        #[traced_test]
        fn $cmd() {
            Cmd::new("true").run().assert_success();
        }

        #[traced_test]
        fn $func() {
            assert_eq!(traced(20, |x: u32| x + 1).value, 21);
        }

        #[test]
        fn $plain() {
            assert!(std::process::Command::new("true").status().unwrap().success());
        }
    )*};
}

cases! {
    cmd_000 func_000 plain_000
    cmd_001 func_001 plain_001
    cmd_002 func_002 plain_002
    cmd_003 func_003 plain_003
    cmd_004 func_004 plain_004
    cmd_005 func_005 plain_005
    cmd_006 func_006 plain_006
    cmd_007 func_007 plain_007
    cmd_008 func_008 plain_008
    cmd_009 func_009 plain_009
    cmd_010 func_010 plain_010
    cmd_011 func_011 plain_011
    cmd_012 func_012 plain_012
    cmd_013 func_013 plain_013
    cmd_014 func_014 plain_014
    cmd_015 func_015 plain_015
    cmd_016 func_016 plain_016
    cmd_017 func_017 plain_017
    cmd_018 func_018 plain_018
    cmd_019 func_019 plain_019
    cmd_020 func_020 plain_020
    cmd_021 func_021 plain_021
    cmd_022 func_022 plain_022
    cmd_023 func_023 plain_023
    cmd_024 func_024 plain_024
    cmd_025 func_025 plain_025
    cmd_026 func_026 plain_026
    cmd_027 func_027 plain_027
    cmd_028 func_028 plain_028
    cmd_029 func_029 plain_029
    cmd_030 func_030 plain_030
    cmd_031 func_031 plain_031
    cmd_032 func_032 plain_032
    cmd_033 func_033 plain_033
    cmd_034 func_034 plain_034
    cmd_035 func_035 plain_035
    cmd_036 func_036 plain_036
    cmd_037 func_037 plain_037
    cmd_038 func_038 plain_038
    cmd_039 func_039 plain_039
    cmd_040 func_040 plain_040
    cmd_041 func_041 plain_041
    cmd_042 func_042 plain_042
    cmd_043 func_043 plain_043
    cmd_044 func_044 plain_044
    cmd_045 func_045 plain_045
    cmd_046 func_046 plain_046
    cmd_047 func_047 plain_047
    cmd_048 func_048 plain_048
    cmd_049 func_049 plain_049
    cmd_050 func_050 plain_050
    cmd_051 func_051 plain_051
    cmd_052 func_052 plain_052
    cmd_053 func_053 plain_053
    cmd_054 func_054 plain_054
    cmd_055 func_055 plain_055
    cmd_056 func_056 plain_056
    cmd_057 func_057 plain_057
    cmd_058 func_058 plain_058
    cmd_059 func_059 plain_059
    cmd_060 func_060 plain_060
    cmd_061 func_061 plain_061
    cmd_062 func_062 plain_062
    cmd_063 func_063 plain_063
    cmd_064 func_064 plain_064
    cmd_065 func_065 plain_065
    cmd_066 func_066 plain_066
    cmd_067 func_067 plain_067
    cmd_068 func_068 plain_068
    cmd_069 func_069 plain_069
    cmd_070 func_070 plain_070
    cmd_071 func_071 plain_071
    cmd_072 func_072 plain_072
    cmd_073 func_073 plain_073
    cmd_074 func_074 plain_074
    cmd_075 func_075 plain_075
    cmd_076 func_076 plain_076
    cmd_077 func_077 plain_077
    cmd_078 func_078 plain_078
    cmd_079 func_079 plain_079
    cmd_080 func_080 plain_080
    cmd_081 func_081 plain_081
    cmd_082 func_082 plain_082
    cmd_083 func_083 plain_083
    cmd_084 func_084 plain_084
    cmd_085 func_085 plain_085
    cmd_086 func_086 plain_086
    cmd_087 func_087 plain_087
    cmd_088 func_088 plain_088
    cmd_089 func_089 plain_089
    cmd_090 func_090 plain_090
    cmd_091 func_091 plain_091
    cmd_092 func_092 plain_092
    cmd_093 func_093 plain_093
    cmd_094 func_094 plain_094
    cmd_095 func_095 plain_095
    cmd_096 func_096 plain_096
    cmd_097 func_097 plain_097
    cmd_098 func_098 plain_098
    cmd_099 func_099 plain_099
}
