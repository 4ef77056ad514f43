declare module '*.vue' {
  import type { DefineComponent } from 'vue';
  const component: DefineComponent<object, object, unknown>;
  export default component;
}

import 'vue-router';
declare module 'vue-router' {
  interface RouteMeta {
    title?: string;
    staff?: boolean;
  }
}
