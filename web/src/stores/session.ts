import { defineStore } from 'pinia';
import type { User } from 'oidc-client-ts';

import { useTokenSource } from '@/api/client';
import { profileOf, userManager, type StaffProfile } from '@/auth/oidc';
import { isDispatcher } from '@/domain/centre';

/** Who is signed in, for the staff pages; residents' pages never look here. */
export const useSession = defineStore('session', {
  state: () => ({ user: null as User | null, restored: false }),
  getters: {
    signedIn: (state): boolean => state.user !== null && !state.user.expired,
    profile: (state): StaffProfile | null => (state.user ? profileOf(state.user) : null),
  },
  actions: {
    adopt(user: User | null): void {
      this.user = user;
      this.restored = true;
      useTokenSource(async () => (this.user && !this.user.expired ? this.user.access_token : null));
    },
    async restore(): Promise<void> {
      if (this.restored) return;
      const manager = await userManager();
      this.adopt(await manager.getUser());
    },
    async signIn(returnTo: string): Promise<void> {
      const manager = await userManager();
      await manager.signinRedirect({ state: { returnTo } });
    },
    /** Finish the redirect back from the provider; the path to go on to. */
    async completeSignIn(): Promise<string> {
      const manager = await userManager();
      const user = await manager.signinRedirectCallback();
      this.adopt(user);
      const state = user.state as { returnTo?: string } | undefined;
      if (state?.returnTo && state.returnTo.startsWith('/staff')) return state.returnTo;
      return isDispatcher(profileOf(user).roles) ? '/staff/centre' : '/staff/cases';
    },
    async signOut(): Promise<void> {
      const manager = await userManager();
      const idToken = this.user?.id_token;
      await manager.removeUser();
      this.user = null;
      await manager.signoutRedirect({ id_token_hint: idToken });
    },
  },
});
