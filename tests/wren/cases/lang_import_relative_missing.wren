import "./lang_pkg/util/nowhere" // expect runtime error: Could not load module './lang_pkg/util/nowhere'.
