// TA_NO_DANGLING marks a function whose returned reference never refers to its arguments: a wrap's
// FromValue (the native object a JS value holds) or an entry of a static table looked up by name.
// GCC 14's -Wdangling-reference takes `const T& t = F(info[0], "what").Get();` for a reference
// into the temporaries F was called with; GCC 14's attribute says it is not. Empty elsewhere.
#pragma once

#if defined(__has_cpp_attribute)
#if __has_cpp_attribute(gnu::no_dangling)
#define TA_NO_DANGLING [[gnu::no_dangling]]
#endif
#endif
#ifndef TA_NO_DANGLING
#define TA_NO_DANGLING
#endif
