// Precompiled header of the test program: the library's (LibTorch and std) plus GoogleTest and GoogleMock, which
// every test file includes. Parsing gtest/gmock first also keeps unity batches (CMakeLists.txt) independent of a
// test file's `using namespace onestep::testing`, which would otherwise make gmock's own `testing` ambiguous.
#pragma once
#include "pch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
